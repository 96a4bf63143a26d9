package ai.edgemri.demo;

import ai.edgemri.core.CanonicalImage;
import ai.edgemri.core.Prediction;
import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.graphics.Matrix;
import android.net.Uri;
import android.os.Bundle;
import android.view.View;
import android.widget.AdapterView;
import android.widget.ImageView;
import android.widget.Spinner;
import android.widget.TextView;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import androidx.exifinterface.media.ExifInterface;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** Pick or shoot an image, classify it, show the top classes, timing and the delegate in use. */
public class MainActivity extends AppCompatActivity {
    private static final int TOP_K = 3;
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private volatile Classifier classifier;
    private volatile String loadError;
    private Bitmap current;
    private ImageView image;
    private TextView result;
    private TextView status;
    private Spinner threads;
    private Spinner delegate;

    private final ActivityResultLauncher<String> pick =
            registerForActivityResult(new ActivityResultContracts.GetContent(), this::onPicked);
    private final ActivityResultLauncher<Void> shoot =
            registerForActivityResult(new ActivityResultContracts.TakePicturePreview(), this::onBitmap);

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        image = findViewById(R.id.image);
        result = findViewById(R.id.result);
        status = findViewById(R.id.status);
        threads = findViewById(R.id.threads);
        delegate = findViewById(R.id.delegate);
        threads.setSelection(0); // "tuned": the manifest's hints (edgemri tune), else the default count
        findViewById(R.id.gallery).setOnClickListener(v -> pick.launch("image/*"));
        findViewById(R.id.camera).setOnClickListener(v -> shoot.launch(null));
        AdapterView.OnItemSelectedListener reload = new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                loadModel();
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        };
        threads.setOnItemSelectedListener(reload);
        delegate.setOnItemSelectedListener(reload);
    }

    /** (Re)create the interpreter with the chosen threads and delegate, off the UI thread. */
    private void loadModel() {
        String choice = threads.getSelectedItem().toString();
        // "tuned": the thread count edgemri tune recorded in the manifest (Classifier.HINTED)
        int nThreads = choice.equals(getString(R.string.threads_tuned)) ? Classifier.HINTED : Integer.parseInt(choice);
        boolean gpu = delegate.getSelectedItemPosition() == 1;
        worker.execute(() -> {
            if (classifier != null) {
                classifier.close();
                classifier = null;
            }
            try {
                classifier = Classifier.load(getAssets(), nThreads, gpu);
                loadError = null;
            } catch (Classifier.UserFacingException ex) {
                loadError = ex.getMessage();
            }
            runOnUiThread(() -> {
                status.setText(loadError != null ? loadError : describeModel());
                if (current != null) {
                    classify(current);
                }
            });
        });
    }

    private String describeModel() {
        return String.format(Locale.ROOT, "Model: %s %s, %dx%d %s input\nRunning on: %s",
                classifier.manifest.task, classifier.manifest.arch, classifier.manifest.input.height,
                classifier.manifest.input.width, classifier.manifest.input.dtype, classifier.delegateInUse);
    }

    private void onPicked(Uri uri) {
        if (uri == null) {
            return; // cancelled
        }
        try {
            onBitmap(decode(uri));
        } catch (IOException ex) {
            result.setText("Could not read the image: " + ex.getMessage());
        }
    }

    private void onBitmap(Bitmap bitmap) {
        if (bitmap == null) {
            result.setText("Could not decode the image (not a picture, or a format this phone cannot read).");
            return;
        }
        if (bitmap.getConfig() != Bitmap.Config.ARGB_8888) { // e.g. HARDWARE or RGB_565: no getPixels
            bitmap = bitmap.copy(Bitmap.Config.ARGB_8888, false);
        }
        current = bitmap;
        image.setImageBitmap(bitmap);
        classify(bitmap);
    }

    private void classify(Bitmap bitmap) {
        if (classifier == null) {
            result.setText(loadError != null ? loadError : "The model is still loading.");
            return;
        }
        int w = bitmap.getWidth();
        int h = bitmap.getHeight();
        int[] argb = new int[w * h];
        bitmap.getPixels(argb, 0, w, 0, 0, w, h); // non-premultiplied ARGB, like the Python decoder
        CanonicalImage img = CanonicalImage.fromArgb(argb, w, h);
        Classifier model = classifier;
        worker.execute(() -> {
            Classifier.Result r = model.classify(img, TOP_K);
            StringBuilder text = new StringBuilder();
            for (Prediction p : r.top) {
                text.append(String.format(Locale.ROOT, "%-12s %5.1f%%%n", p.label, p.probability * 100));
            }
            String timing = String.format(Locale.ROOT, "Inference %.1f ms (preprocess %.1f ms) on %s",
                    r.inferenceMs, r.preprocessMs, model.delegateInUse);
            if (r.verdict.inDistribution != null && !r.verdict.inDistribution) {
                text.insert(0, "NOT what this model was trained on: " + r.verdict.reason + "\n\n");
            } else if (r.verdict.inDistribution == null) {
                text.append("\n(").append(r.verdict.reason).append(")");
            }
            runOnUiThread(() -> {
                result.setText(text.toString().trim());
                status.setText(timing);
            });
        });
    }

    /** Decode a picked image as ARGB_8888 with its EXIF orientation applied (as the Python side does). */
    private Bitmap decode(Uri uri) throws IOException {
        BitmapFactory.Options opts = new BitmapFactory.Options();
        opts.inPreferredConfig = Bitmap.Config.ARGB_8888;
        Bitmap bitmap;
        try (InputStream in = getContentResolver().openInputStream(uri)) {
            bitmap = BitmapFactory.decodeStream(in, null, opts);
        }
        if (bitmap == null) {
            return null;
        }
        int rotation;
        try (InputStream in = getContentResolver().openInputStream(uri)) {
            rotation = new ExifInterface(in).getRotationDegrees();
        } catch (IOException | RuntimeException ex) {
            rotation = 0; // no readable EXIF: keep as decoded
        }
        if (rotation == 0) {
            return bitmap;
        }
        Matrix m = new Matrix();
        m.postRotate(rotation);
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.getWidth(), bitmap.getHeight(), m, true);
    }

    @Override
    protected void onDestroy() {
        worker.execute(() -> {
            if (classifier != null) {
                classifier.close();
            }
        });
        worker.shutdown();
        super.onDestroy();
    }
}

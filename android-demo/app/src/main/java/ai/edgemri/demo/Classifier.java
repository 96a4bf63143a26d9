package ai.edgemri.demo;

import ai.edgemri.core.CanonicalImage;
import ai.edgemri.core.ManifestException;
import ai.edgemri.core.ModelInput;
import ai.edgemri.core.ModelManifest;
import ai.edgemri.core.Postprocessor;
import ai.edgemri.core.OodGuard;
import ai.edgemri.core.Prediction;
import ai.edgemri.core.Preprocessor;
import ai.edgemri.core.RuntimeHints;
import android.content.res.AssetManager;
import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;
import org.tensorflow.lite.gpu.CompatibilityList;
import org.tensorflow.lite.gpu.GpuDelegate;

/**
 * The LiteRT glue: loads model.tflite + manifest.json from the assets, checks one against the
 * other, and runs one image. Everything numeric (preprocessing, quantization, softmax, top-k)
 * is in the core module, which is tested against the Python runtime on the JVM.
 */
final class Classifier implements AutoCloseable {
    static final String MODEL = "model.tflite";
    static final String MANIFEST = "manifest.json";

    /** One classification: ranked classes, the guard's verdict, inference time. */
    static final class Result {
        final List<Prediction> top;
        /** Whether the image looks like what the model was trained on (guard off for older manifests). */
        final OodGuard.Verdict verdict;
        final double inferenceMs;
        final double preprocessMs;

        Result(List<Prediction> top, OodGuard.Verdict verdict, double preprocessMs, double inferenceMs) {
            this.top = top;
            this.verdict = verdict;
            this.preprocessMs = preprocessMs;
            this.inferenceMs = inferenceMs;
        }
    }

    final ModelManifest manifest;
    /** What actually runs the model, e.g. "GPU" or "CPU (XNNPACK), GPU unavailable: ...". */
    final String delegateInUse;
    private final Interpreter interpreter;
    private final GpuDelegate gpu;
    private final Preprocessor pre;
    private final Postprocessor post;

    private Classifier(ModelManifest manifest, Interpreter interpreter, GpuDelegate gpu, String delegateInUse) {
        this.manifest = manifest;
        this.interpreter = interpreter;
        this.gpu = gpu;
        this.delegateInUse = delegateInUse;
        this.pre = new Preprocessor(manifest.input);
        this.post = new Postprocessor(manifest);
    }

    /** Pass as {@code threads} to use the manifest's tuned thread count (else {@link #DEFAULT_THREADS}). */
    static final int HINTED = 0;
    static final int DEFAULT_THREADS = 2;

    /**
     * Load and validate; throws {@link UserFacingException} with a message fit for the screen.
     *
     * <p>The manifest's runtime hints ({@code edgemri tune}, tuned for "litert") set XNNPACK on or
     * off (a 9x9 depthwise ConvMixer int8 model ran 2-14x faster on the builtin kernels on x86) and, when
     * {@code threads} is {@link #HINTED}, the thread count; an explicit {@code threads} wins.
     */
    static Classifier load(AssetManager assets, int threads, boolean wantGpu) throws UserFacingException {
        byte[] model = readAsset(assets, MODEL);
        ModelManifest manifest;
        try {
            manifest = ModelManifest.parse(new String(readAsset(assets, MANIFEST), StandardCharsets.UTF_8), MANIFEST);
        } catch (ManifestException ex) {
            throw new UserFacingException(ex.getMessage());
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect(model.length).order(ByteOrder.nativeOrder());
        buffer.put(model).rewind();

        RuntimeHints hints = manifest.hints.appliesTo("litert") ? manifest.hints : RuntimeHints.NONE;
        if (threads <= HINTED) {
            threads = hints.threadsOr(DEFAULT_THREADS);
        }
        boolean xnnpack = hints.xnnpackOr(true);
        Interpreter.Options cpu = new Interpreter.Options().setNumThreads(threads).setUseXNNPACK(xnnpack);
        String note = "CPU (" + (xnnpack ? "XNNPACK" : "builtin kernels") + ", " + threads + " threads"
                + (hints.isEmpty() ? "" : ", tuned hints") + ")";
        if (wantGpu) {
            GpuDelegate gpu = null;
            CompatibilityList compat = new CompatibilityList();
            try {
                if (compat.isDelegateSupportedOnThisDevice()) {
                    gpu = new GpuDelegate(compat.getBestOptionsForThisDevice());
                    Interpreter interp = new Interpreter(buffer,
                            new Interpreter.Options().setNumThreads(threads).addDelegate(gpu));
                    return checked(manifest, interp, gpu, "GPU delegate");
                }
                note += ", GPU not supported on this device";
            } catch (RuntimeException | LinkageError ex) { // delegate creation or graph delegation failed
                if (gpu != null) {
                    gpu.close();
                }
                note += ", GPU failed: " + ex.getMessage();
            } finally {
                compat.close();
            }
        }
        try {
            return checked(manifest, new Interpreter(buffer, cpu), null, note);
        } catch (IllegalArgumentException ex) {
            throw new UserFacingException(MODEL + " is not a valid TFLite model: " + ex.getMessage());
        }
    }

    private static Classifier checked(ModelManifest manifest, Interpreter interp, GpuDelegate gpu, String note)
            throws UserFacingException {
        try {
            Tensor in = interp.getInputTensor(0);
            Tensor out = interp.getOutputTensor(0);
            manifest.checkModelIo(in.shape(), out.shape(), MODEL + " with " + MANIFEST);
            checkType(in, manifest.input.dtype, manifest.input.quantization, "input");
            checkType(out, manifest.output.dtype, manifest.output.quantization, "output");
        } catch (ManifestException ex) {
            interp.close();
            if (gpu != null) {
                gpu.close();
            }
            throw new UserFacingException(ex.getMessage());
        }
        return new Classifier(manifest, interp, gpu, note);
    }

    private static void checkType(Tensor t, String dtype, ModelManifest.Quantization q, String which) {
        String actual = t.dataType() == DataType.INT8 ? "int8" : t.dataType() == DataType.UINT8 ? "uint8"
                : t.dataType() == DataType.FLOAT32 ? "float32" : t.dataType().toString();
        if (!actual.equals(dtype)) {
            throw new ManifestException(MODEL + " " + which + " is " + actual + " but " + MANIFEST + " says " + dtype
                    + ". Bundle the manifest exported with this model");
        }
        if (q != null) {
            double scale = t.quantizationParams().getScale();
            int zero = t.quantizationParams().getZeroPoint();
            if (zero != q.zeroPoint || Math.abs(scale - q.scale) > 1e-5 * Math.abs(q.scale)) {
                throw new ManifestException(MODEL + " " + which + " quantization (" + scale + ", " + zero
                        + ") disagrees with " + MANIFEST + " (" + q.scale + ", " + q.zeroPoint + ")");
            }
        }
    }

    /** Classify one decoded image; returns the top {@code k} classes. */
    Result classify(CanonicalImage image, int k) {
        long t0 = System.nanoTime();
        CanonicalImage prepared = pre.prepare(image);
        ModelInput x = pre.toModelInput(prepared);
        ByteBuffer in = ByteBuffer.allocateDirect(x.byteSize()).order(ByteOrder.nativeOrder());
        x.writeTo(in);
        in.rewind();
        Tensor outTensor = interpreter.getOutputTensor(0);
        ByteBuffer out = ByteBuffer.allocateDirect(outTensor.numBytes()).order(ByteOrder.nativeOrder());
        long t1 = System.nanoTime();
        interpreter.run(in, out);
        long t2 = System.nanoTime();
        out.rewind();
        float[] probs;
        if (outTensor.dataType() == DataType.FLOAT32) {
            float[] real = new float[outTensor.numElements()];
            out.asFloatBuffer().get(real);
            probs = post.probabilities(real);
        } else {
            byte[] raw = new byte[outTensor.numElements()];
            out.get(raw);
            probs = post.probabilities(raw);
        }
        OodGuard.Verdict verdict = manifest.ood.check(image, prepared, probs);
        return new Result(post.topK(probs, k), verdict, (t1 - t0) / 1e6, (t2 - t1) / 1e6);
    }

    @Override
    public void close() {
        interpreter.close();
        if (gpu != null) {
            gpu.close();
        }
    }

    private static byte[] readAsset(AssetManager assets, String name) throws UserFacingException {
        try (InputStream in = assets.open(name)) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            byte[] chunk = new byte[1 << 16];
            for (int n; (n = in.read(chunk)) > 0; ) {
                buf.write(chunk, 0, n);
            }
            return buf.toByteArray();
        } catch (FileNotFoundException ex) {
            throw new UserFacingException("No " + name + " in the app's assets. On the computer run "
                    + "`edgemri bundle RUN --target tflite-int8 --out DIR --android`, then rebuild the app.");
        } catch (IOException ex) {
            throw new UserFacingException("Cannot read " + name + " from the assets: " + ex.getMessage());
        }
    }

    /** An error whose message is shown to the user as is. */
    static final class UserFacingException extends Exception {
        private static final long serialVersionUID = 1L;

        UserFacingException(String message) {
            super(message);
        }
    }
}

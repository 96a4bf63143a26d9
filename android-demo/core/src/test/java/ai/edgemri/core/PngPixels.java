package ai.edgemri.core;

import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.File;
import java.io.IOException;
import javax.imageio.ImageIO;

/**
 * Test-side decoder: a PNG to the canonical image, the way Android's Bitmap gives pixels.
 *
 * <p>Grayscale PNGs are read from the raster, not {@code getRGB()}: Java's gray colour space is
 * linear, so {@code getRGB()} would gamma-shift the values. Colour PNGs go through
 * {@code getRGB()} (non-premultiplied ARGB, like {@code Bitmap.getPixels}).
 */
final class PngPixels {
    private PngPixels() {
    }

    static CanonicalImage read(File file) throws IOException {
        BufferedImage img = ImageIO.read(file);
        if (img == null) {
            throw new IOException("cannot decode image " + file);
        }
        int w = img.getWidth();
        int h = img.getHeight();
        Raster raster = img.getRaster();
        int bands = raster.getNumBands();
        boolean gray = img.getColorModel().getColorSpace().getNumComponents() == 1
                && !(img.getColorModel() instanceof java.awt.image.IndexColorModel);
        if (gray && raster.getSampleModel().getSampleSize(0) != 8) {
            throw new IOException(file + ": only 8-bit grayscale is supported in tests");
        }
        if (gray && bands == 1) {
            return CanonicalImage.ofGray(raster.getPixels(0, 0, w, h, (int[]) null), w, h);
        }
        if (gray && bands == 2) { // gray + alpha: as ARGB with the gray replicated
            int[] ga = raster.getPixels(0, 0, w, h, (int[]) null);
            int[] argb = new int[w * h];
            for (int i = 0; i < argb.length; i++) {
                int g = ga[2 * i];
                argb[i] = (ga[2 * i + 1] << 24) | (g << 16) | (g << 8) | g;
            }
            return CanonicalImage.fromArgb(argb, w, h);
        }
        return CanonicalImage.fromArgb(img.getRGB(0, 0, w, h, null, 0, w), w, h);
    }
}

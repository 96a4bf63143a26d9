package ai.edgemri.core;

/**
 * An 8-bit image in the canonical form of runtime/images.py: grayscale (1 channel) or RGB
 * (3 channels), row-major HWC, values 0..255. Also used for prepared (resized) pixels.
 */
public final class CanonicalImage {
    public final int width;
    public final int height;
    public final int channels;
    /** HWC samples, each 0..255. */
    public final int[] data;

    public CanonicalImage(int width, int height, int channels, int[] data) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image has no pixels (" + width + "x" + height + ")");
        }
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("channels must be 1 or 3, not " + channels);
        }
        if (data.length != width * height * channels) {
            throw new IllegalArgumentException("pixel buffer holds " + data.length + " samples, expected "
                    + (width * height * channels));
        }
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.data = data;
    }

    /**
     * From packed ARGB ints (Android {@code Bitmap.getPixels}, {@code BufferedImage.getRGB}),
     * not premultiplied. Alpha is composited onto black exactly as images.py does
     * ({@code rint(c * (a / 255.0))}, half to even), so transparent PNGs match too.
     */
    public static CanonicalImage fromArgb(int[] argb, int width, int height) {
        if (argb.length != width * height) {
            throw new IllegalArgumentException("ARGB buffer holds " + argb.length + " pixels, expected "
                    + (width * height));
        }
        int[] rgb = new int[width * height * 3];
        for (int i = 0; i < argb.length; i++) {
            int p = argb[i];
            double alpha = ((p >>> 24) & 0xff) / 255.0;
            rgb[3 * i] = (int) Math.rint(((p >> 16) & 0xff) * alpha);
            rgb[3 * i + 1] = (int) Math.rint(((p >> 8) & 0xff) * alpha);
            rgb[3 * i + 2] = (int) Math.rint((p & 0xff) * alpha);
        }
        return new CanonicalImage(width, height, 3, rgb);
    }

    /** From one 0..255 gray sample per pixel (a decoded grayscale image). */
    public static CanonicalImage ofGray(int[] gray, int width, int height) {
        return new CanonicalImage(width, height, 1, gray);
    }

    public int get(int y, int x, int c) {
        return data[(y * width + x) * channels + c];
    }
}

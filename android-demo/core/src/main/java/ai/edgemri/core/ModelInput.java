package ai.edgemri.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The tensor the model takes: int8/uint8 in {@link #bytes} or float32 in {@link #floats}. */
public final class ModelInput {
    public final String dtype;
    public final int[] shape;
    /** int8 (two's complement) or uint8 samples, in layout order; null for float32. */
    public final byte[] bytes;
    /** float32 samples in layout order; null for int8/uint8. */
    public final float[] floats;

    ModelInput(String dtype, int[] shape, byte[] bytes, float[] floats) {
        this.dtype = dtype;
        this.shape = shape;
        this.bytes = bytes;
        this.floats = floats;
    }

    public int byteSize() {
        return bytes != null ? bytes.length : floats.length * 4;
    }

    /** Write the tensor into {@code buffer} (the caller sets its byte order, native for TFLite). */
    public void writeTo(ByteBuffer buffer) {
        if (bytes != null) {
            buffer.put(bytes);
        } else {
            for (float f : floats) {
                buffer.putFloat(f);
            }
        }
    }

    /** Little-endian bytes: the layout of the fixtures' .bin files. */
    public byte[] toLittleEndianBytes() {
        ByteBuffer buf = ByteBuffer.allocate(byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        writeTo(buf);
        return buf.array();
    }
}

package ai.edgemri.core;

/** One ranked class: its index in the manifest, label and probability. */
public final class Prediction {
    public final int index;
    public final String label;
    public final float probability;

    public Prediction(int index, String label, float probability) {
        this.index = index;
        this.label = label;
        this.probability = probability;
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "%s %.1f%%", label, probability * 100f);
    }
}

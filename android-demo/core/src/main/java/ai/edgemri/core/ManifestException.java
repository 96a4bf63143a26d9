package ai.edgemri.core;

/** The manifest is missing, malformed, or disagrees with the model it travels with. */
public class ManifestException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ManifestException(String message) {
        super(message);
    }
}

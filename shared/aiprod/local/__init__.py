"""Running aiprod without a cloud: the embedded runtime, the demo and the emulator stack."""

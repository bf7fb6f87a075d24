"""Applications on the toolkit: the demo, the bundled example model, verifiable evaluation."""

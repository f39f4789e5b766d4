"""Drop-in replacements for other MaxSim packages' APIs."""

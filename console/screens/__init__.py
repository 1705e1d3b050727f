"""Modal screens: confirmations, the flatten preview, the live switch, help."""

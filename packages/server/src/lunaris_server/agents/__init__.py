"""Agent versions: the MSIs every server process serves, to browsers and to agents."""

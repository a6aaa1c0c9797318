"""The simulators' dynamics: node servers, episode draws, the reference and compiled simulators."""

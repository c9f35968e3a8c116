"""The learner-leader (quorum port) protocol of a zabd ensemble: wire formats, sans-IO."""

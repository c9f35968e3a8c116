"""Who is in the ensemble and what makes a quorum: members, verifiers, hierarchies and reconfig plans (pure)."""

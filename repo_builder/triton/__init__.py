"""Facts about Triton shared by every stage: platforms, datatypes, config rules, releases, the CPU preview."""

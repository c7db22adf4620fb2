"""Side effects behind small interfaces: clock, repository, audit log, PDF, report files."""

"""The counselor's workspace: caseload, notes, digests, care flags and reassignment."""

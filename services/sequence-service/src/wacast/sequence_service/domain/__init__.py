"""The rules of sequences and enrollments: pure `decide` and `evolve`, no I/O."""

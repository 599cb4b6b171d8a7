"""A seeded, realistic market simulator: scenarios, state, pricing and its clock."""

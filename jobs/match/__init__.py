"""The matching engine: four levels over two relations, one-to-one assignment, explained matches,
exceptions with reason codes. Each level is a pure DataFrame function; ``engine`` runs them in order."""

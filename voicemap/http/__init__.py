"""HTTP blueprints: thin views over the service modules."""

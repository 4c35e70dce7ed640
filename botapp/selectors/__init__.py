"""Read-only query functions (no writes, no side effects): what the admin's pages show."""

"""Built-in plugins: ordinary plugins the core registers through the same plugin manager."""

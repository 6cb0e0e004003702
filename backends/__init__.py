"""Built-in recognizers. Each is registered in the ``digitbench.backends`` entry-point group."""

"""The live side: engine, model runtime, clock, scheduler, ports (no TensorFlow here)."""

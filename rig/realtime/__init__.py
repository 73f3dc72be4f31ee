"""Process isolation and real-time streaming: shared-memory rings (`shm`), one process per arm SDK
(`arm_process`), and the chunk executor in its own process (`executor_process`). See docs/control.md."""

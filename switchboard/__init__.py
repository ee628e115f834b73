"""The monolithic core: settings, storage, bus, jobs, users and permissions, audit, the app factory
and the CLI."""

"""Long-running components: model instances, the dispatcher, the sweeper."""

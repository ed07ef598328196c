"""What a result depends on (keys), where results are kept (store), and the shared remote cache."""

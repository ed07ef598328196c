"""doit's side: the tasks of one invocation, the run command, its options and schedule."""

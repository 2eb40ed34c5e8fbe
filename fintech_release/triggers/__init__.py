"""What starts runs by itself: the commit sensor, the Bitbucket webhook, the rules for which run a commit starts,
and the sensors that follow a run with another (deploy after build, teardown after deploy)."""

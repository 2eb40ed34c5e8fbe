"""The health model every platform reports into (`model`), and how Kubernetes objects are judged (`kubernetes`)."""

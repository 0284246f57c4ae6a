"""Training on several nodes through a Kubeflow Trainer TrainJob: the job (`spec`), the pod that owns it (`owner`),
reading how it ended (`status`) and running it on a cluster (`submit`)."""

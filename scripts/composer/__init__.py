"""Cloud Composer 3: the image's package list, the deploy's plan and targets, and the local twin."""

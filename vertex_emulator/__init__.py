"""An offline emulator of the Vertex AI REST API (pipelineJobs, tuningJobs, models, endpoints,
prediction, operations) for the calls this project makes; never deployed to Composer."""

"""ARQ workers: the jobs and their schedule. They call app.domain, nothing else."""

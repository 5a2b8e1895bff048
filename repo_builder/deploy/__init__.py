"""Deploy: docker-compose.yml for the Triton GPU container, and the Docker probe."""

"""The local stack: real stand-ins for Kafka, DynamoDB and Redis as child processes."""

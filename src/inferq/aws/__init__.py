"""AWS wire vocabulary: error shapes, generated API shapes, protocol (de)serialization."""

"""The run engine: a check of one implementation as a session of jobs through a runner,
streaming its outcome; against an upstream; golden files; scaling out."""

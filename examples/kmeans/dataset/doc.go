// Package dataset reads, validates and generates the numeric text datasets
// of Gale's iterative examples (k-means and logistic regression).
//
// A dataset is one or more text files (local paths or object-store URLs
// that gale.OpenStore accepts) holding one vector per line as
// comma-separated decimal numbers; blank lines are skipped. Expand resolves
// input paths to files in a fixed order, Scan validates every line (the
// same width everywhere, finite numbers) and reports the first bad one by
// file and line, Pick chooses initial points by a seeded shuffle, and
// WritePoints / WriteLabeled generate reproducible clustered points and
// labeled points like the spark-perf generators, as partitioned files.
//
// It may import the gale root package (for OpenStore) and backends/objstore.
// WritePoints and WriteLabeled start goroutines (one producer per part
// being written) and wait for them before returning; nothing else does.
package dataset

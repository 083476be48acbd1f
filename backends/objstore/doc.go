// Package objstore defines Gale's object storage interface and resolves
// storage URLs (file:///dir, /dir, s3://bucket/prefix) to stores.
//
// Object storage holds job input, the data-shipping shuffle's intermediate
// objects and job output. Implementations: the local filesystem (this
// package, NewFS), S3 (backends/aws), Google Cloud Storage (backends/gcp),
// Azure Blob Storage (backends/azure) and IBM Cloud Object Storage
// (backends/ibm); each registers its scheme with a Resolver. The cloud
// stores embed a Location (bucket and prefix), which checks keys, maps them
// under the prefix and names objects alike for all of them.
//
// Keys are slash-separated names relative to the store's root, never starting
// with a slash; ValidateKey states the rules every store applies to the keys
// it writes. A Put is atomic: the object appears whole once Put returns nil,
// or not at all. Optional capabilities (Renamer, Copier) are detected by type
// assertion, and Move falls back to Get, Put and Delete without them.
//
// A minimal use:
//
//	r := objstore.NewResolver()
//	r.Register("s3", aws.S3Opener(aws.DefaultS3Config()))
//	st, err := r.Open(ctx, "s3://bucket/jobs/42")
//	...
//	err = st.Put(ctx, "out/part-00000", f)
//	objs, err := objstore.ListAll(ctx, st, "out/")
//
// The conformance suite every Store must pass is in package objstoretest.
//
// This package may import only the standard library. It starts no goroutines;
// a Store's methods run on their caller's goroutine.
package objstore

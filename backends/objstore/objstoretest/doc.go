// Package objstoretest is the conformance suite for objstore.Store
// implementations. Every store runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		objstoretest.Run(t, func(t *testing.T) objstore.Store {
//			st, err := objstore.NewFS(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return st
//		})
//	}
//
// The suite checks each contract of the Store interface and of the optional
// Renamer and Copier capabilities against answers it computes itself: round
// trips of sizes around S3's 5 MiB multipart boundary, ranged reads, listing
// order and pagination, ErrNotExist and ErrInvalidKey, atomic Put under
// failing readers, cancellation and concurrent writers, and Move.
//
// This package may import the standard library, testing and objstore. Its
// goroutines (concurrent writers) are started and waited for within one
// subtest.
package objstoretest

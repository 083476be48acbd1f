package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/galeproject/gale/backends/objstore"
)

// overwriteHint says what Overwrite replaces and what to do instead;
// remove is how to remove the output by hand.
func overwriteHint(remove string) string {
	return "the run option gale.Overwrite(true) (--overwrite on the gale command line) replaces only the output of an " +
		"earlier Gale job, which holds a _SUCCESS marker; remove it yourself if it can go (" + remove +
		"), or choose another output path"
}

// checkOverwritableDir refuses to overwrite the non-empty local directory
// dir unless an earlier Gale job committed it.
func checkOverwritableDir(label, dir string) error {
	if fi, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err == nil && fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s: output directory %s holds files but no _SUCCESS marker, so it is not the output of a "+
		"Gale job and will not be replaced: %s", label, dir, overwriteHint("rm -r "+dir))
}

// checkOverwritableStore refuses to overwrite the non-empty output out of
// an object store unless an earlier Gale job committed it, or it holds
// nothing but what Gale jobs left in their staging prefix (_temporary/).
func checkOverwritableStore(ctx context.Context, label string, out objstore.Store) error {
	if _, err := out.Stat(ctx, "_SUCCESS"); err == nil {
		return nil
	} else if !errors.Is(err, objstore.ErrNotExist) {
		return fmt.Errorf("%s: checking output %s: %w", label, out, err)
	}
	token := ""
	for {
		page, err := out.List(ctx, "", token, 0)
		if err != nil {
			return fmt.Errorf("%s: checking output %s: %w", label, out, err)
		}
		for _, o := range page.Objects {
			if !strings.HasPrefix(o.Key, "_temporary/") {
				return fmt.Errorf("%s: output %s holds objects (%s among them) but no _SUCCESS marker, so it is not the "+
					"output of a Gale job and will not be replaced: %s", label, out, o.Key, overwriteHint("delete every object under it"))
			}
		}
		if page.Next == "" {
			return nil
		}
		token = page.Next
	}
}

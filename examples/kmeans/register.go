package kmeans

import "github.com/galeproject/gale"

// Register builds every pipeline of this package on p with placeholder
// inputs, which registers their kernels by the names the driver's tasks
// use: a worker binary of the process backend calls it before serving.
func Register(p *gale.Pipeline) {
	BuildShared(p, []string{"input"}, 1)
	BuildStages(p, []string{"input"}, Round{K: 1, Dim: 1, Centers: []float64{0}})
}

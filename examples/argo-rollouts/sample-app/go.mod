module github.com/tidemark/tidemark/examples/argo-rollouts/sample-app

go 1.26.7

package watch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseKinds(t *testing.T) {
	k, err := ParseKinds([]string{"deploy,hpa", "cm", "Secrets", "rollout"})
	require.NoError(t, err)
	require.Equal(t, []Kind{Deployments, Rollouts, HPAs, ConfigMaps, Secrets}, k)
	_, err = ParseKinds([]string{"pods"})
	require.ErrorContains(t, err, `kind "pods" is not known; accepted: deployments, statefulsets`)
	k, err = ParseKinds(nil)
	require.NoError(t, err)
	require.Empty(t, k)
}

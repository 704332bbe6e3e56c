package sources

// Settings are one organization's receiver settings: the secrets that
// check deliveries, and the generic hooks. The zero value refuses GitHub,
// GitLab and LaunchDarkly deliveries (they sign, and there is nothing to
// check the signature with) and has no generic hooks.
type Settings struct {
	// GitHubSecret is the GitHub webhook's secret (hooks.github.secret).
	GitHubSecret string
	// GitLabToken is the GitLab webhook's secret token (hooks.gitlab.token).
	GitLabToken string
	// LaunchDarklySecret is the LaunchDarkly webhook's signing secret
	// (hooks.launchdarkly.secret).
	LaunchDarklySecret string
	// Generic are the generic hooks (hooks.generic), each with a distinct
	// name.
	Generic []*Generic
}

// GenericHook returns the generic hook of that name, or nil.
func (s Settings) GenericHook(name string) *Generic {
	for _, g := range s.Generic {
		if g.Name() == name {
			return g
		}
	}
	return nil
}

// GenericNames lists the generic hooks' names.
func (s Settings) GenericNames() []string {
	names := make([]string, 0, len(s.Generic))
	for _, g := range s.Generic {
		names = append(names, g.Name())
	}
	return names
}

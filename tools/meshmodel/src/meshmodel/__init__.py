"""The Istio resource model that the local gateway and the static checks share."""

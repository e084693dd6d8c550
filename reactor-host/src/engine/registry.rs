//! Registry API: how the engine treats a registry. The engine, not reactor, talks to registries
//! for pulls and pushes, so whether a registry may be reached insecurely (plain HTTP, or a
//! certificate that cannot be verified) is its `insecure-registries` setting.

use std::net::{IpAddr, ToSocketAddrs};

use super::{Engine, Error};

impl Engine {
    /// Whether the engine treats `registry` (`host[:port]`) as insecure: listed as such by
    /// name, or resolving to an address in one of its insecure ranges (loopback by default).
    pub async fn treats_as_insecure(&self, registry: &str) -> Result<bool, Error> {
        let info = self.docker.info().await.map_err(|e| self.error(e))?;
        let config = info.registry_config.unwrap_or_default();
        if let Some(index) = config.index_configs.as_ref().and_then(|configs| configs.get(registry)) {
            return Ok(index.secure == Some(false));
        }
        let ranges = config.insecure_registry_cidrs.unwrap_or_default();
        let (host, port) = match registry.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => (host, port.parse().unwrap_or(443)),
            _ => (registry, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<IpAddr> = match (host, port).to_socket_addrs() {
            Ok(addresses) => addresses.map(|a| a.ip()).collect(),
            Err(e) => {
                log::debug!("cannot resolve {host}, so the engine would not either: {e}");
                Vec::new()
            }
        };
        Ok(addresses.iter().any(|ip| ranges.iter().any(|range| in_range(*ip, range))))
    }
}

/// Whether `ip` is in the CIDR `range` (`127.0.0.0/8`, `::1/128`).
fn in_range(ip: IpAddr, range: &str) -> bool {
    let Some((network, bits)) = range.split_once('/') else {
        return false;
    };
    let (Ok(network), Ok(bits)) = (network.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_matched_against_cidr_ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(in_range(ip("127.0.0.1"), "127.0.0.0/8"));
        assert!(in_range(ip("127.255.0.9"), "127.0.0.0/8"));
        assert!(!in_range(ip("128.0.0.1"), "127.0.0.0/8"));
        assert!(in_range(ip("10.1.2.3"), "0.0.0.0/0"));
        assert!(in_range(ip("::1"), "::1/128"));
        assert!(!in_range(ip("::2"), "::1/128"));
        assert!(!in_range(ip("127.0.0.1"), "::1/128"));
        assert!(!in_range(ip("127.0.0.1"), "not a range"));
    }

    #[tokio::test]
    async fn the_engine_treats_loopback_registries_as_insecure_and_others_as_secure() {
        let engine = Engine::connect(
            &crate::engine::endpoint::resolve(&Default::default(), &crate::engine::endpoint::ProcessEnv)
                .expect("an engine"),
        )
        .await
        .expect("a Docker engine (scripts/setup.sh starts one)");
        assert!(engine.treats_as_insecure("127.0.0.1:5001").await.expect("info"));
        assert!(engine.treats_as_insecure("localhost:5000").await.expect("info"));
        assert!(!engine.treats_as_insecure("192.0.2.1:5000").await.expect("info"));
    }
}

"""Which input changes replace a resource, per `openstack:*` type token.

Taken from terraform-provider-openstack's resource schemas (attributes with `ForceNew: true`,
top level or inside a nested block), which pulumi-openstack 5.5.3 bridges; names are the
Pulumi (camelCase) input names, where list blocks are plural (`network` -> `networks`).
Everything else updates in place. Notably, as in the provider: an instance's `flavorId` /
`flavorName` change is a resize and its `imageId` / `imageName` change a rebuild (both in
place, same server id), while a subnet's `cidr` or a volume's `imageId` replaces.
Regenerate by reading `resource_openstack_<name>.go` when the provider is upgraded.
"""

FORCE_NEW: dict[str, frozenset[str]] = {
    "openstack:networking/network:Network": frozenset(
        {"availabilityZoneHints", "region", "tenantId", "transparentVlan", "valueSpecs"}
    ),
    "openstack:networking/subnet:Subnet": frozenset(
        {
            "cidr",
            "ipVersion",
            "ipv6AddressMode",
            "ipv6RaMode",
            "networkId",
            "prefixLength",
            "region",
            "subnetpoolId",
            "tenantId",
            "valueSpecs",
        }
    ),
    "openstack:networking/router:Router": frozenset(
        {"availabilityZoneHints", "distributed", "flavorId", "region", "tenantId", "valueSpecs"}
    ),
    "openstack:networking/routerInterface:RouterInterface": frozenset({"portId", "region", "routerId", "subnetId"}),
    "openstack:networking/secGroup:SecGroup": frozenset({"deleteDefaultRules", "region", "tenantId"}),
    "openstack:networking/secGroupRule:SecGroupRule": frozenset(
        {
            "description",
            "direction",
            "ethertype",
            "portRangeMax",
            "portRangeMin",
            "protocol",
            "region",
            "remoteAddressGroupId",
            "remoteGroupId",
            "remoteIpPrefix",
            "securityGroupId",
            "tenantId",
        }
    ),
    "openstack:networking/port:Port": frozenset(
        {"deviceId", "deviceOwner", "macAddress", "networkId", "region", "tenantId", "valueSpecs"}
    ),
    "openstack:networking/floatingIp:FloatingIp": frozenset(
        {"address", "dnsDomain", "dnsName", "pool", "region", "tenantId", "valueSpecs"}
    ),
    "openstack:networking/floatingIpAssociate:FloatingIpAssociate": frozenset({"floatingIp", "region"}),
    "openstack:compute/instance:Instance": frozenset(
        {
            "availabilityZone",
            "availabilityZoneHints",
            "configDrive",
            "hypervisorHostname",
            "keyPair",
            "networks",
            "networkMode",
            "region",
            "userData",
            "blockDevices",
            "schedulerHints",
        }
    ),
    "openstack:compute/keypair:Keypair": frozenset({"name", "publicKey", "region", "userId", "valueSpecs"}),
    "openstack:blockstorage/volume:Volume": frozenset(
        {
            "availabilityZone",
            "backupId",
            "consistencyGroupId",
            "imageId",
            "region",
            "snapshotId",
            "sourceReplica",
            "sourceVolId",
            "schedulerHints",
        }
    ),
    "openstack:compute/volumeAttach:VolumeAttach": frozenset(
        {"instanceId", "multiattach", "region", "tag", "vendorOptions", "volumeId"}
    ),
    "openstack:objectstorage/container:Container": frozenset({"region", "storageClass", "storagePolicy"}),
    "openstack:identity/ec2CredentialV3:Ec2CredentialV3": frozenset({"projectId", "region", "userId"}),
    "openstack:dns/zone:Zone": frozenset({"attributes", "name", "projectId", "region", "type", "valueSpecs"}),
    "openstack:dns/recordSet:RecordSet": frozenset({"name", "projectId", "region", "type", "valueSpecs", "zoneId"}),
}

# Outputs the provider always marks secret (generated credentials).
SECRET_OUTPUTS: dict[str, frozenset[str]] = {
    "openstack:compute/instance:Instance": frozenset({"adminPass"}),
    "openstack:compute/keypair:Keypair": frozenset({"privateKey"}),
    "openstack:identity/ec2CredentialV3:Ec2CredentialV3": frozenset({"secret"}),
    "openstack:objectstorage/container:Container": frozenset({"containerSyncKey"}),
}

INVOKES: frozenset[str] = frozenset(
    {
        "openstack:images/getImage:getImage",
        "openstack:compute/getFlavor:getFlavor",
        "openstack:networking/getNetwork:getNetwork",
        "openstack:networking/getSubnet:getSubnet",
        "openstack:networking/getSubnetPool:getSubnetPool",
        "openstack:networking/getSecGroup:getSecGroup",
        "openstack:compute/getAvailabilityZones:getAvailabilityZones",
        "openstack:dns/getDnsZone:getDnsZone",
    }
)

//! A transparent wrapper around airlift's HttpDiscoveryLookupClient that reports every
//! lookup the real client (or the CachingServiceSelector driving it) makes: the ETag it
//! sent, the ETag and max-age it received, and whether it kept its previous list, which
//! is what airlift does on a 304.
package discovery.interop.airlift;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.inject.Inject;
import io.airlift.discovery.client.DiscoveryLookupClient;
import io.airlift.discovery.client.ForDiscoveryClient;
import io.airlift.discovery.client.HttpDiscoveryLookupClient;
import io.airlift.discovery.client.ServiceDescriptors;

import java.net.URI;
import java.util.function.Supplier;

public final class ObservingLookupClient
        implements DiscoveryLookupClient
{
    private final HttpDiscoveryLookupClient delegate;
    private final Supplier<URI> discoveryUri;

    @Inject
    public ObservingLookupClient(HttpDiscoveryLookupClient delegate, @ForDiscoveryClient Supplier<URI> discoveryUri)
    {
        this.delegate = delegate;
        this.discoveryUri = discoveryUri;
    }

    @Override
    public ListenableFuture<ServiceDescriptors> getServices(String type)
    {
        return observe(type, null, null, delegate.getServices(type));
    }

    @Override
    public ListenableFuture<ServiceDescriptors> getServices(String type, String pool)
    {
        return observe(type, pool, null, delegate.getServices(type, pool));
    }

    @Override
    public ListenableFuture<ServiceDescriptors> refreshServices(ServiceDescriptors previous)
    {
        return observe(previous.getType(), previous.getPool(), previous, delegate.refreshServices(previous));
    }

    private ListenableFuture<ServiceDescriptors> observe(String type, String pool, ServiceDescriptors previous, ListenableFuture<ServiceDescriptors> future)
    {
        // Asked right after the delegate: the answer its request used, barring a reload.
        String uri = String.valueOf(discoveryUri.get());
        String etagSent = previous == null ? null : previous.getETag();
        return Out.reportThen(
                future,
                result -> Out.event("lookup",
                        "ok", true,
                        "type", type,
                        "pool", pool,
                        "uri", uri,
                        "etagSent", etagSent,
                        "etag", result.getETag(),
                        "maxAgeMs", result.getMaxAge() == null ? null : result.getMaxAge().toMillis(),
                        // On a 304 airlift reuses the previous list object; a 200 builds a new one.
                        "kept", previous != null && result.getServiceDescriptors() == previous.getServiceDescriptors(),
                        "services", result.getServiceDescriptors()),
                t -> Out.event("lookup",
                        "ok", false,
                        "type", type,
                        "pool", pool,
                        "uri", uri,
                        "etagSent", etagSent,
                        "error", Out.describe(t)));
    }
}

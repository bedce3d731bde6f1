//! A transparent wrapper around airlift's HttpDiscoveryAnnouncementClient that reports
//! every announcement and unannouncement the real Announcer makes (outcome and the delay
//! the client derived from our Cache-Control), so the tests see the client's side too.
package discovery.interop.airlift;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.inject.Inject;
import io.airlift.discovery.client.DiscoveryAnnouncementClient;
import io.airlift.discovery.client.ForDiscoveryClient;
import io.airlift.discovery.client.HttpDiscoveryAnnouncementClient;
import io.airlift.discovery.client.ServiceAnnouncement;
import io.airlift.units.Duration;

import java.net.URI;
import java.util.Set;
import java.util.function.Supplier;

public final class ObservingAnnouncementClient
        implements DiscoveryAnnouncementClient
{
    private final HttpDiscoveryAnnouncementClient delegate;
    private final Supplier<URI> discoveryUri;

    @Inject
    public ObservingAnnouncementClient(HttpDiscoveryAnnouncementClient delegate, @ForDiscoveryClient Supplier<URI> discoveryUri)
    {
        this.delegate = delegate;
        this.discoveryUri = discoveryUri;
    }

    @Override
    public ListenableFuture<Duration> announce(Set<ServiceAnnouncement> services)
    {
        // The same supplier the delegate asks next; only a concurrent inventory reload
        // could make the two answers differ.
        String uri = String.valueOf(discoveryUri.get());
        return Out.reportThen(
                delegate.announce(services),
                maxAge -> Out.event("announce", "ok", true, "uri", uri, "maxAgeMs", maxAge.toMillis()),
                t -> Out.event("announce", "ok", false, "uri", uri, "error", Out.describe(t)));
    }

    @Override
    public ListenableFuture<Void> unannounce()
    {
        String uri = String.valueOf(discoveryUri.get());
        return Out.reportThen(
                delegate.unannounce(),
                ignored -> Out.event("unannounce", "ok", true, "uri", uri),
                t -> Out.event("unannounce", "ok", false, "uri", uri, "error", Out.describe(t)));
    }
}

/*
 * Starts the Java airlift discovery server 1.37 for the interop suite's differential test.
 *
 * Why it exists: the server's own main class, io.airlift.discovery.server.DiscoveryServer,
 * also installs HttpEventModule and JmxHttpRpcModule, whose artifacts (event-http and
 * jmx-http-rpc 247) the suite's Maven repository does not serve. This launcher installs
 * every other module of that main class, in the same order, so the HTTP resources, stores
 * and configuration under test are exactly the released ones. Configuration comes from
 * -Dconfig=etc/config.properties, as with the real launcher.
 *
 * HttpEventModule is what binds the EventClient that Airlift's HTTP server asks for (it
 * posts request events with it); without that module the launcher binds airlift's own
 * NullEventClient, which drops events, as a server without an event collector would.
 */
package discovery.interop;

import com.google.inject.Injector;
import com.google.inject.Scopes;
import io.airlift.bootstrap.Bootstrap;
import io.airlift.discovery.client.Announcer;
import io.airlift.discovery.client.DiscoveryModule;
import io.airlift.discovery.server.DiscoveryServerModule;
import io.airlift.event.client.EventClient;
import io.airlift.event.client.NullEventClient;
import io.airlift.http.server.HttpServerModule;
import io.airlift.jaxrs.JaxrsModule;
import io.airlift.jmx.JmxModule;
import io.airlift.json.JsonModule;
import io.airlift.log.Logger;
import io.airlift.node.NodeModule;
import io.airlift.tracetoken.TraceTokenModule;
import io.airlift.tracing.TracingModule;
import org.weakref.jmx.guice.MBeanModule;

public final class JavaDiscoveryServer
{
    private static final Logger log = Logger.get(JavaDiscoveryServer.class);

    private JavaDiscoveryServer() {}

    public static void main(String[] args)
    {
        try {
            Bootstrap app = new Bootstrap(
                    new MBeanModule(),
                    new NodeModule(),
                    new HttpServerModule(),
                    new JaxrsModule(),
                    new JsonModule(),
                    new JmxModule(),
                    new DiscoveryServerModule(),
                    binder -> binder.bind(EventClient.class).to(NullEventClient.class).in(Scopes.SINGLETON),
                    new TraceTokenModule(),
                    new TracingModule("discovery", "1.37"),
                    new DiscoveryModule());
            Injector injector = app.initialize();
            // The real main starts the self-announcement too; without discovery.uri it
            // only logs that no discovery server is known, so the store stays clean.
            injector.getInstance(Announcer.class).start();
            log.info("JavaDiscoveryServer started");
        }
        catch (Throwable t) {
            log.error(t);
            System.exit(1);
        }
    }
}

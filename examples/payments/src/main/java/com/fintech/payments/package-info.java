/** The payments service: accepts and lists customer payments. */
package com.fintech.payments;
